// Mass profiles (deflection, convergence) and the Sersic source light, in lenstronomy's conventions
// (lensing_physics.md sections 0, 3, 4). Angles in arcsec. Each function takes one position so it
// can be called from any thread; the simulator loops over pixels.
#pragma once

namespace halo::data::lens {

struct Vec2 {
  double x = 0, y = 0;
};

// q (axis ratio) and phi (major-axis angle) from (e1, e2); |e| clipped at 0.9999 as lenstronomy.
void ellipticity_to_q_phi(double e1, double e2, double& q, double& phi);

// Singular isothermal ellipsoid with lenstronomy's product-averaged theta_E.
Vec2 sie_deflection(double x, double y, double theta_e, double e1, double e2, double cx = 0, double cy = 0);
double sie_kappa(double x, double y, double theta_e, double e1, double e2, double cx = 0, double cy = 0);
double sie_potential(double x, double y, double theta_e, double e1, double e2, double cx = 0, double cy = 0);

// External shear about (ra0, dec0).
Vec2 shear_deflection(double x, double y, double gamma1, double gamma2, double ra0 = 0, double dec0 = 0);

// Point mass of Einstein radius theta_e.
Vec2 point_mass_deflection(double x, double y, double theta_e, double cx = 0, double cy = 0);

// NFW in lenstronomy's lensing parameters (Rs, alpha_Rs in arcsec).
Vec2 nfw_deflection(double x, double y, double rs, double alpha_rs, double cx = 0, double cy = 0);
double nfw_kappa(double x, double y, double rs, double alpha_rs, double cx = 0, double cy = 0);
// Truncated NFW (Baltz, Marshall & Oguri 2009); r_trunc in arcsec.
Vec2 tnfw_deflection(double x, double y, double rs, double alpha_rs, double r_trunc, double cx = 0, double cy = 0);
double tnfw_kappa(double x, double y, double rs, double alpha_rs, double r_trunc, double cx = 0, double cy = 0);
// Total mass of a TNFW in units of Sigma_cr arcsec^2: 4 pi rho0 Rs^3 T(tau).
double tnfw_total_mass(double rs, double alpha_rs, double r_trunc);
// Physical (M200, concentration) -> lensing (Rs, alpha_Rs) in arcsec, for lenses at distance d_l
// (Mpc), critical density sigma_cr (M_sun/Mpc^2) and rho_crit(z_l) (M_sun/Mpc^3).
void nfw_physical_to_angle(double m200, double c, double d_l, double sigma_cr_mpc2, double rho_crit,
                           double& rs_arcsec, double& alpha_rs_arcsec);

// Elliptical Sersic surface brightness (per arcsec^2); amp is the brightness at R_sersic.
double sersic(double x, double y, double amp, double r_sersic, double n, double e1, double e2, double cx = 0,
              double cy = 0);
double sersic_bn(double n);  // lenstronomy's 1.9992 n - 0.3271
double sersic_total_flux(double amp, double r_sersic, double n);

}  // namespace halo::data::lens
